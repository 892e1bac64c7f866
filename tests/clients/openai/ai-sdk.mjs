// The Vercel AI SDK's default openai(id) provider (it speaks the Responses API) against the gateway,
// run by the xunit tests (ResponsesNodeClientTests). Usage: node ai-sdk.mjs <baseURL> <model>
// Prints one JSON line; exits non-zero when the SDK threw. Bounded: three calls, 20 s each, loopback only.
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, streamText } from 'ai';

const [baseURL, model] = process.argv.slice(2);
if (!new URL(baseURL).hostname.match(/^(127\.0\.0\.1|localhost)$/)) {
  throw new Error(`refusing a non-loopback base URL: ${baseURL}`);
}
const openai = createOpenAI({ baseURL, apiKey: 'test-client-key' });
const limits = { maxRetries: 0, abortSignal: AbortSignal.timeout(20_000) };

const generated = await generateText({ model: openai(model), system: 'Be brief.', prompt: 'Say hello.', ...limits });
let streamError = null;
const streamed = streamText({ model: openai(model), prompt: 'Say hello.', ...limits, onError: (e) => { streamError = String(e.error ?? e); } });
let streamedText = '';
for await (const delta of streamed.textStream) streamedText += delta;
const usage = await streamed.usage;
process.stdout.write(JSON.stringify({
  text: generated.text,
  finishReason: generated.finishReason,
  inputTokens: generated.usage.inputTokens,
  outputTokens: generated.usage.outputTokens,
  streamedText,
  streamedOutputTokens: usage.outputTokens,
  streamError,
}) + '\n');
