// Callback-style Node.js handlers (CommonJS) for tests/integration/test_runtimes.py.
exports.callback = (event, context, callback) => {
  setTimeout(() => callback(null, { style: 'callback', got: event }), 10);
};

// The callback's result goes out only once the event loop is empty (the timer ran).
exports.waits = (event, context, callback) => {
  let timerRan = false;
  setTimeout(() => {
    timerRan = true;
    console.log('timer after callback ran');
  }, 50);
  callback(null, { timerRanBeforeCallback: timerRan });
};

// callbackWaitsForEmptyEventLoop = false answers at once, before a pending timer.
exports.noWait = (event, context, callback) => {
  context.callbackWaitsForEmptyEventLoop = false;
  const started = Date.now();
  const timer = setTimeout(() => {}, 2000);
  callback(null, { answeredAfterMs: Date.now() - started });
  timer.unref();
};

exports.callbackError = (event, context, callback) => {
  callback(new TypeError('callback error'));
};

exports.succeed = (event, context) => {
  context.succeed({ via: 'succeed' });
};

exports.failCtx = (event, context) => {
  context.fail(new Error('failed via context.fail'));
};

exports.nothing = () => {
  // neither a promise nor the callback: ends with null once the loop is empty
};

exports.uncaught = () => {
  setTimeout(() => {
    throw new RangeError('thrown from a timer');
  }, 5);
};
