"""Has no lambda_handler: the runtime reports Runtime.HandlerNotFound as an init error."""


def other_handler(event, context):
    return "not the configured handler"
