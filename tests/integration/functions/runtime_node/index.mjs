// Node.js handlers (ES module) for tests/integration/test_runtimes.py.
export const contextFields = async (event, context) => {
  console.log('contextFields called');
  await new Promise((resolve) => setTimeout(resolve, 5));
  return {
    event,
    functionName: context.functionName,
    functionVersion: context.functionVersion,
    invokedFunctionArn: context.invokedFunctionArn,
    memoryLimitInMB: context.memoryLimitInMB,
    awsRequestId: context.awsRequestId,
    logGroupName: context.logGroupName,
    logStreamName: context.logStreamName,
    remaining: context.getRemainingTimeInMillis(),
    callbackWaitsForEmptyEventLoop: context.callbackWaitsForEmptyEventLoop,
    identityId: context.identity ? context.identity.cognitoIdentityId : null,
    clientCustom: context.clientContext ? context.clientContext.custom : null,
    traceId: process.env._X_AMZN_TRACE_ID,
    taskRoot: process.env.LAMBDA_TASK_ROOT,
    cwd: process.cwd(),
    region: process.env.AWS_REGION,
    pid: process.pid,
  };
};

export const remaining = async (event, context) => {
  const before = context.getRemainingTimeInMillis();
  await new Promise((resolve) => setTimeout(resolve, event.sleep_ms ?? 200));
  return { before, after: context.getRemainingTimeInMillis() };
};

class OrderError extends Error {
  constructor(message) {
    super(message);
    this.name = 'OrderError';
  }
}

function checkOrder(order) {
  throw new OrderError(`order ${order} is not valid`);
}

export const fail = async (event) => {
  checkOrder(event.order ?? 7);
};

export const failSync = (event) => {
  checkOrder(event.order ?? 7);
};

export const rejectString = async () => {
  throw 'plain string';
};

export const notSerializable = async () => ({ big: 10n });

export const nested = { deeper: { handler: async () => 'nested export' } };
