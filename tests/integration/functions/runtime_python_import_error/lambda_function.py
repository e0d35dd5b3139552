"""Fails at import: the runtime reports Runtime.ImportModuleError as an init error."""
import triggerd_no_such_module  # noqa: F401


def lambda_handler(event, context):
    return "never"
