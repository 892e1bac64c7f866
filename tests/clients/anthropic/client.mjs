// The official Anthropic SDK against the gateway, one scenario per run; prints one JSON line with what
// the SDK made of the answer, for the xunit test to check. Loopback only: the test passes the gateway's
// 127.0.0.1 address. No retries, a short timeout, so a wrong answer fails fast instead of hanging.
import Anthropic from '@anthropic-ai/sdk';

const [scenario, model] = process.argv.slice(2);
const baseURL = process.env.GATEWAY_BASE_URL;
if (!baseURL || !new URL(baseURL).hostname.match(/^(127\.0\.0\.1|localhost)$/)) {
  console.error('GATEWAY_BASE_URL must be a loopback address');
  process.exit(2);
}
const client = new Anthropic({ baseURL, apiKey: process.env.GATEWAY_KEY ?? 'unused', maxRetries: 0, timeout: 20_000 });

const weather = {
  name: 'get_weather',
  description: 'Current weather for a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

function summary(message) {
  return { id: message.id, type: message.type, role: message.role, model: message.model, content: message.content,
           stop_reason: message.stop_reason, stop_sequence: message.stop_sequence, usage: message.usage };
}

async function run() {
  switch (scenario) {
    case 'create':
      return summary(await client.messages.create({
        model, max_tokens: 100, system: 'Be brief.', messages: [{ role: 'user', content: 'Say hello.' }],
      }));
    case 'create-tools': {
      const { data, response } = await client.messages.create({
        model, max_tokens: 100, tools: [weather], tool_choice: { type: 'auto' },
        messages: [
          { role: 'user', content: 'Weather in Paris?' },
          { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Lyon' } }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: '12 degrees' }, { type: 'text', text: 'And Paris?' }] },
        ],
      }).withResponse();
      return { ...summary(data), headers: { requestId: response.headers.get('x-request-id'), provider: response.headers.get('x-gateway-provider') } };
    }
    case 'stream-text': {
      const stream = client.messages.stream({ model, max_tokens: 100, messages: [{ role: 'user', content: 'Count to three.' }] });
      const texts = [];
      stream.on('text', (delta) => texts.push(delta));
      const message = await stream.finalMessage();
      return { texts, final: summary(message) };
    }
    case 'stream-tools': {
      const stream = client.messages.stream({
        model, max_tokens: 100, tools: [weather], messages: [{ role: 'user', content: 'Weather in Paris?' }],
      });
      const events = [];
      for await (const event of stream) events.push(event.type + (event.delta?.type ? ':' + event.delta.type : ''));
      const message = await stream.finalMessage();
      return { events, final: summary(message) };
    }
    case 'create-native': {
      // Fields only Anthropic's own API takes (extended thinking, top_k): the gateway passes them to an anthropic-type provider.
      const message = await client.messages.create({
        model, max_tokens: 2048, top_k: 5, thinking: { type: 'enabled', budget_tokens: 1024 },
        messages: [{ role: 'user', content: 'Think, then say hello.' }],
      });
      return summary(message);
    }
    case 'stream-native': {
      const stream = client.messages.stream({
        model, max_tokens: 2048, top_k: 5, thinking: { type: 'enabled', budget_tokens: 1024 },
        messages: [{ role: 'user', content: 'Think, then say hello.' }],
      });
      const thinking = [];
      stream.on('thinking', (delta) => thinking.push(delta));
      const message = await stream.finalMessage();
      return { thinking, final: summary(message) };
    }
    case 'count':
      return await client.messages.countTokens({ model, messages: [{ role: 'user', content: 'How many tokens is this?' }], tools: [weather] });
    default:
      throw new Error('unknown scenario ' + scenario);
  }
}

try {
  console.log(JSON.stringify({ ok: true, result: await run() }));
} catch (e) {
  // What the SDK made of an error: its class, the HTTP status, Anthropic's error type.
  console.log(JSON.stringify({ ok: false, name: e?.constructor?.name, status: e?.status ?? null, type: e?.type ?? e?.error?.error?.type ?? null, message: String(e?.message ?? e) }));
}
