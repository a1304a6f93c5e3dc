// The Vercel AI SDK pointed at LLM Server by base URL, as its users write it: a tool loop
// (call a tool, send its result, read the answer), whole or streamed, on chat completions or the
// Responses API. Prints one JSON line: the answer, the steps (each with its response's id), for
// a stream every part, and with "record" the body of every request the SDK sent. "openai" adds
// provider options (`store: true` makes the SDK send its earlier output items as
// `item_reference`s); "history" is a prompt answered first (its answer and response id printed
// as "earlier"), whose messages the loop's requests then carry, as a chat's later turns do.
//   node ai_sdk.mjs '{"baseURL": ..., "headers": {...}, "model": ..., "api": "chat"|"responses",
//                     "stream": false, "output": null | <JSON schema>, "firstCall": false,
//                     "openai": {...}, "record": false, "history": null | <prompt>}'
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, jsonSchema, Output, stepCountIs, streamText, tool } from "ai";

const options = JSON.parse(process.argv[2]);
const requests = [];
async function recorded(url, init) {
  if (typeof init?.body === "string") requests.push(JSON.parse(init.body));
  return fetch(url, init);
}
const provider = createOpenAI({
  baseURL: options.baseURL,
  apiKey: "EMPTY",
  headers: options.headers,
  ...(options.record && { fetch: recorded }),
});
const model = options.api === "responses" ? provider.responses(options.model) : provider.chat(options.model);
const weather = { Paris: "Sunny, 21C", Seoul: "Cloudy, 12C" };
const tools = {
  get_weather: tool({
    description: "Get the current weather in a city",
    inputSchema: jsonSchema({
      type: "object",
      properties: { city: { type: "string" } },
      required: ["city"],
      additionalProperties: false,
    }),
    execute: async ({ city }) => weather[city] ?? "Sunny, 21C",
  }),
};
const common = {
  model,
  temperature: 0,
  maxOutputTokens: 60,
  providerOptions: { openai: { store: false, ...options.openai } },
};
const prompt = options.prompt ?? "What's the weather in Paris?";
const request = { ...common, tools, prompt, stopWhen: stepCountIs(4) };
let earlier;
if (options.history) {
  earlier = await generateText({ ...common, prompt: options.history });
  delete request.prompt;
  request.messages = [
    { role: "user", content: options.history },
    ...earlier.response.messages,
    { role: "user", content: prompt },
  ];
}
if (options.output) request.output = Output.object({ schema: jsonSchema(options.output) });
// A small model may answer without a tool: the loop's first step must call one (as agents do).
if (options.firstCall) {
  request.prepareStep = ({ stepNumber }) => ({ toolChoice: stepNumber === 0 ? "required" : "auto" });
}

function summary(result, steps) {
  return {
    ...(options.record && { requests }),
    ...(earlier && { earlier: { text: earlier.text, responseId: earlier.response.id } }),
    text: result.text,
    steps: steps.map((step) => ({
      finishReason: step.finishReason,
      toolCalls: step.toolCalls.map((call) => ({ name: call.toolName, input: call.input })),
      text: step.text,
      content: step.content.map((part) => part.type),
      responseId: step.response.id,
    })),
  };
}

if (options.stream) {
  const result = streamText(request);
  const parts = [];
  for await (const part of result.fullStream) {
    if (part.type === "error") throw part.error;
    parts.push({ type: part.type, text: part.text ?? part.delta, toolName: part.toolName });
  }
  const steps = await result.steps;
  const out = summary({ text: await result.text }, steps);
  if (options.output) out.output = await result.output;
  console.log(JSON.stringify({ ...out, parts }));
} else {
  const result = await generateText(request);
  const out = summary(result, result.steps);
  if (options.output) out.output = result.output;
  console.log(JSON.stringify(out));
}
