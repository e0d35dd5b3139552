// Invokes a function through triggerd's Lambda Invoke API with @aws-sdk/client-lambda
// and prints one JSON line with what came back, for tests/integration/test_aws_sdk.py.
//
// Usage: node invoke.js ENDPOINT JSON_OPTIONS
// JSON_OPTIONS: {"FunctionName", "Payload" (a string), "InvocationType", "LogType",
// "Qualifier", "region", "accessKeyId", "secretAccessKey"}. Prints {"ok": true,
// "StatusCode", "FunctionError", "ExecutedVersion", "LogResult" (decoded), "Payload"
// (text)} or {"ok": false, "name", "message", "httpStatusCode"}; exits 0 either way.
"use strict";
const { LambdaClient, InvokeCommand } = require("@aws-sdk/client-lambda");

async function main() {
  const [endpoint, optionsText] = process.argv.slice(2);
  const o = JSON.parse(optionsText);
  const client = new LambdaClient({
    endpoint,
    region: o.region || "us-east-1",
    credentials: {
      accessKeyId: o.accessKeyId || "AKIDTEST",
      secretAccessKey: o.secretAccessKey || "secret",
    },
    maxAttempts: 1,
  });
  const input = { FunctionName: o.FunctionName };
  if (o.Payload !== undefined) input.Payload = new TextEncoder().encode(o.Payload);
  for (const k of ["InvocationType", "LogType", "Qualifier"]) if (o[k]) input[k] = o[k];
  try {
    const r = await client.send(new InvokeCommand(input));
    console.log(JSON.stringify({
      ok: true,
      StatusCode: r.StatusCode,
      FunctionError: r.FunctionError || null,
      ExecutedVersion: r.ExecutedVersion || null,
      LogResult: r.LogResult ? Buffer.from(r.LogResult, "base64").toString("utf8") : null,
      Payload: r.Payload ? new TextDecoder().decode(r.Payload) : null,
    }));
  } catch (e) {
    console.log(JSON.stringify({
      ok: false,
      name: e.name,
      message: e.message,
      httpStatusCode: e.$metadata ? e.$metadata.httpStatusCode : null,
    }));
  }
}

main();
