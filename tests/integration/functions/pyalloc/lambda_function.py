"""A python3-runtime handler for the memory limit test: it touches event["mb"] MB."""
import os


def lambda_handler(event, context):
    block = bytearray(event["mb"] << 20)
    for i in range(0, len(block), 4096):
        block[i] = 1
    return {"allocated": event["mb"], "pid": os.getpid(),
            "memory_limit_in_mb": int(context.memory_limit_in_mb)}
