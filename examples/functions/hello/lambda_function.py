"""The `hello` function of triggerd's default configuration (config/triggerd.cfg).

A plain AWS Lambda handler: it answers with a greeting and the event it received.
Events arrive in AWS's shapes (event_format "aws"): the demo webhook's request as a
Lambda function URL request event, a cron tick as an EventBridge "Scheduled Event", an
Invoke API call as its payload unchanged. For the webhook the answer is a function URL
response object, so the curl in the README prints the JSON body itself.
"""
import base64
import json


def lambda_handler(event, context):
    answer = {
        "message": "Hello from triggerd",
        "function": context.function_name,
        "request_id": context.aws_request_id,
        "event": event,
    }
    if is_function_url_request(event):
        body = request_body(event)
        answer["event"] = {
            "method": event["requestContext"]["http"]["method"],
            "path": event.get("rawPath"),
            "query": event.get("queryStringParameters", {}),
            "body": body,
        }
        return {
            "statusCode": 200,
            "headers": {"content-type": "application/json"},
            "body": json.dumps(answer, indent=2) + "\n",
        }
    return answer


def request_body(event):
    """The request body: parsed when it is JSON, else text, else base64 as it came."""
    body = event.get("body")
    if body is None:
        return None
    if event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(body).decode("utf-8")
        except ValueError:
            return body  # binary: leave it base64
    try:
        return json.loads(body)
    except ValueError:
        return body


def is_function_url_request(event):
    return (isinstance(event, dict) and event.get("version") == "2.0"
            and isinstance(event.get("requestContext"), dict)
            and "http" in event["requestContext"])
