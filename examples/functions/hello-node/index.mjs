// A Node.js Lambda handler for triggerd's `process` kind (runtime = "nodejs",
// handler = "index.handler"): it answers with a greeting and the event it received.
// A webhook's function URL request event (event_format "aws") gets a function URL
// response object, which triggerd turns into the HTTP response.
export const handler = async (event, context) => {
  const answer = {
    message: 'Hello from triggerd (Node.js)',
    function: context.functionName,
    requestId: context.awsRequestId,
    event,
  };
  if (event?.version === '2.0' && event.requestContext?.http) {
    let body = event.body;
    if (body !== undefined && event.isBase64Encoded) {
      const bytes = Buffer.from(body, 'base64');
      const text = bytes.toString('utf8');
      if (Buffer.from(text, 'utf8').equals(bytes)) body = text; // else binary: keep base64
    }
    if (body !== undefined) {
      try {
        body = JSON.parse(body);
      } catch {
        // not JSON: echo the text as it came
      }
    }
    answer.event = {
      method: event.requestContext.http.method,
      path: event.rawPath,
      query: event.queryStringParameters ?? {},
      body,
    };
    return {
      statusCode: 200,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(answer, null, 2) + '\n',
    };
  }
  return answer;
};
