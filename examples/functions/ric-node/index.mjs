// A Node.js handler run by AWS's own runtime interface client (npm aws-lambda-ric),
// started by ./bootstrap under triggerd's `runtime = "provided"`: the same Runtime API
// that the shipped runtimes use, spoken by AWS's code.
export const handler = async (event, context) => ({
  message: 'Hello from aws-lambda-ric under triggerd',
  functionName: context.functionName,
  requestId: context.awsRequestId,
  remainingMs: context.getRemainingTimeInMillis(),
  event,
});

export const fail = async () => {
  throw new TypeError('thrown under aws-lambda-ric');
};
