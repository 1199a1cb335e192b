// Drives `lopa serve` with the official `openai` npm client: every case of CASES_FILE (a JSON list of
// {name, model, prompt, max_tokens, stream, extra}) is sent at once (Promise.all, so they share the
// server's batch), greedy; prints one JSON line: [{name, token_ids, text, finish_reason, usage}].
// usage: NODE_PATH=build/node/node_modules node openai_client.cjs BASE_URL CASES_FILE
'use strict';
const fs = require('fs');
const OpenAI = require('openai');

async function main() {
  const [baseURL, casesFile] = process.argv.slice(2);
  const client = new OpenAI({ baseURL, apiKey: 'lopa-needs-no-key', maxRetries: 0 });
  const cases = JSON.parse(fs.readFileSync(casesFile, 'utf8'));
  const results = await Promise.all(cases.map(async (c) => {
    const params = { model: c.model, prompt: c.prompt, max_tokens: c.max_tokens, temperature: 0, ...(c.extra || {}) };
    if (!c.stream) {
      const r = await client.completions.create(params);
      const ch = r.choices[0];
      return { name: c.name, token_ids: ch.token_ids, text: ch.text, finish_reason: ch.finish_reason, usage: r.usage };
    }
    const stream = await client.completions.create({ ...params, stream: true });
    const out = { name: c.name, token_ids: [], text: '', finish_reason: null, usage: null, chunks: 0 };
    for await (const chunk of stream) {
      out.chunks += 1;
      if (chunk.usage) out.usage = chunk.usage;
      for (const ch of chunk.choices || []) {
        out.token_ids.push(...(ch.token_ids || []));
        out.text += ch.text;
        if (ch.finish_reason) out.finish_reason = ch.finish_reason;
      }
    }
    return out;
  }));
  // A bad request must surface as the client's APIError with status 400 and the server's message.
  let badStatus = null, badMessage = null;
  try {
    await client.completions.create({ model: 'no-such-adapter', prompt: 'x', max_tokens: 1 });
  } catch (e) {
    badStatus = e.status;
    badMessage = e.message;
  }
  console.log(JSON.stringify({ results, bad: { status: badStatus, message: badMessage } }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
