"""Python handlers for tests/integration/test_runtimes.py (one module, many handlers)."""
import os
import time


def context_fields(event, context):
    """Answers with the event and everything the context and environment tell."""
    print("context_fields called")
    identity = context.identity
    client_context = context.client_context
    return {
        "event": event,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "aws_request_id": context.aws_request_id,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining": context.get_remaining_time_in_millis(),
        "identity_id": identity.cognito_identity_id if identity else None,
        "client_custom": client_context.custom if client_context else None,
        "trace_id": os.environ.get("_X_AMZN_TRACE_ID"),
        "task_root": os.environ.get("LAMBDA_TASK_ROOT"),
        "cwd": os.getcwd(),
        "region": os.environ.get("AWS_REGION"),
        "tz": os.environ.get("TZ"),
        "pid": os.getpid(),
    }


def remaining(event, context):
    """The remaining time before and after sleeping event["sleep_ms"]."""
    before = context.get_remaining_time_in_millis()
    time.sleep(event.get("sleep_ms", 200) / 1000)
    return {"before": before, "after": context.get_remaining_time_in_millis()}


class OrderError(Exception):
    pass


def check_order(order):
    raise OrderError(f"order {order} is not valid")


def fail(event, context):
    check_order(event.get("order", 7))


def not_serializable(event, context):
    return {"ids": {1, 2, 3}}


def noop(event, context):
    return None


def log_lines(event, context):
    import logging
    print("line one")
    print("line two")
    logging.getLogger().warning("a warning through logging")
    return "logged"
