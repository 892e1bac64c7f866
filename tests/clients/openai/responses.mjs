// The official openai npm package against the gateway's /v1/responses, run by the xunit tests
// (ResponsesNodeClientTests). Usage: node responses.mjs <scenario> <baseURL> <model>
// Prints one JSON line with what the client saw; exits non-zero when the client threw.
// Bounded: one request per step, a 20 s timeout each, no retries, loopback only.
import OpenAI from 'openai';

const [scenario, baseURL, model] = process.argv.slice(2);
if (!new URL(baseURL).hostname.match(/^(127\.0\.0\.1|localhost)$/)) {
  throw new Error(`refusing a non-loopback base URL: ${baseURL}`);
}
const client = new OpenAI({ baseURL, apiKey: 'test-client-key', maxRetries: 0, timeout: 20_000 });

const weather = {
  type: 'function',
  name: 'get_weather',
  description: 'Current weather for a city',
  strict: true,
  parameters: {
    type: 'object',
    properties: { city: { type: 'string' } },
    required: ['city'],
    additionalProperties: false,
  },
};

async function plain() {
  const response = await client.responses.create({ model, instructions: 'Be brief.', input: 'Say hello.' });
  const got = await client.responses.retrieve(response.id);
  return { id: response.id, status: response.status, text: response.output_text, usage: response.usage, retrieved: got.output_text };
}

async function streamed() {
  // The raw events, as responses.create yields them...
  const stream = await client.responses.create({ model, input: 'Say hello.', stream: true });
  const types = [];
  let text = '';
  let completed = null;
  for await (const event of stream) {
    types.push(event.type);
    if (event.type === 'response.output_text.delta') text += event.delta;
    if (event.type === 'response.completed') completed = event.response;
  }
  // ...and the SDK's own accumulator (responses.stream), which checks every index, item id and order.
  const helper = client.responses.stream({ model, input: 'Say hello.' });
  const final = await helper.finalResponse();
  return { types, text, status: completed?.status, usage: completed?.usage, accumulated: final.output_text, accumulatedStatus: final.status };
}

async function tools() {
  const first = await client.responses.create({ model, input: 'Weather in Paris?', tools: [weather] });
  const call = first.output.find((item) => item.type === 'function_call');
  const second = await client.responses.create({
    model,
    previous_response_id: first.id,
    tools: [weather],
    input: [{ type: 'function_call_output', call_id: call.call_id, output: '18C and sunny' }],
  });
  // The same call streamed, through the accumulator.
  const helper = client.responses.stream({ model, input: 'Weather in Paris?', tools: [weather] });
  const final = await helper.finalResponse();
  const streamedCall = final.output.find((item) => item.type === 'function_call');
  return {
    call: { name: call.name, arguments: call.arguments, call_id: call.call_id },
    followUp: second.output_text,
    streamedCall: streamedCall && { name: streamedCall.name, arguments: streamedCall.arguments },
  };
}

async function errors() {
  try {
    await client.responses.create({ model: 'no-such-model', input: 'hi' });
    return { threw: false };
  } catch (e) {
    return { threw: true, status: e.status, code: e.code, type: e.type };
  }
}

async function inputItems() {
  const input = [
    { role: 'developer', content: 'Answer in French.' },
    { role: 'user', content: [{ type: 'input_text', text: 'Hello.' }] },
    { role: 'assistant', content: 'Bonjour.' },
    { role: 'user', content: 'And goodbye?' },
  ];
  const response = await client.responses.create({ model, input });
  // One page in the default order (newest first), then every item through the SDK's own paging (after=…).
  const page = await client.responses.inputItems.list(response.id, { limit: 3 });
  const all = [];
  for await (const item of client.responses.inputItems.list(response.id, { order: 'asc', limit: 1 })) all.push(item);
  return {
    // (The SDK's CursorPage keeps data and has_more; first_id and last_id are checked over plain HTTP.)
    page: { ids: page.data.map((i) => i.id), hasMore: page.has_more },
    all: all.map((i) => ({ id: i.id, type: i.type, role: i.role, content: i.content })),
  };
}

const scenarios = { plain, streamed, tools, errors, 'input-items': inputItems };
const result = await scenarios[scenario]();
process.stdout.write(JSON.stringify(result) + '\n');
