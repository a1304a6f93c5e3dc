// The Vercel AI SDK pointed at LLM Server by base URL, as its users write it: a tool loop
// (call a tool, send its result, read the answer), whole or streamed, on chat completions or the
// Responses API. Prints one JSON line: the answer, the steps, and for a stream every part.
//   node ai_sdk.mjs '{"baseURL": ..., "headers": {...}, "model": ..., "api": "chat"|"responses",
//                     "stream": false, "output": null | <JSON schema>, "firstCall": false}'
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, jsonSchema, Output, stepCountIs, streamText, tool } from "ai";

const options = JSON.parse(process.argv[2]);
const provider = createOpenAI({ baseURL: options.baseURL, apiKey: "EMPTY", headers: options.headers });
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
const request = {
  model,
  tools,
  prompt: options.prompt ?? "What's the weather in Paris?",
  temperature: 0,
  maxOutputTokens: 60,
  stopWhen: stepCountIs(4),
  providerOptions: { openai: { store: false } },
};
if (options.output) request.output = Output.object({ schema: jsonSchema(options.output) });
// A small model may answer without a tool: the loop's first step must call one (as agents do).
if (options.firstCall) {
  request.prepareStep = ({ stepNumber }) => ({ toolChoice: stepNumber === 0 ? "required" : "auto" });
}

function summary(result, steps) {
  return {
    text: result.text,
    steps: steps.map((step) => ({
      finishReason: step.finishReason,
      toolCalls: step.toolCalls.map((call) => ({ name: call.toolName, input: call.input })),
      text: step.text,
      content: step.content.map((part) => part.type),
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
