// Fails at load: the runtime reports Runtime.ImportModuleError as an init error.
const missing = require('triggerd-no-such-package');

exports.handler = async () => missing;
