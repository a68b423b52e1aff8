// The API as this page uses it: registered operations only, named by the ids in
// persisted-documents.json (the manifest the federation registered for this site), over
// HTTP for queries and mutations and over graphql-transport-ws for live updates.
import { config } from "./config.js";

/** An error the API answered with its stable `code` (and `reason`), or a network failure. */
export class ApiError extends Error {
  constructor(message, code, reason) {
    super(message);
    this.code = code;
    this.reason = reason;
  }
}

let manifest;

/** operation name → document id, read once from the manifest beside the page. */
function documentIds() {
  manifest ??= fetch(new URL("../persisted-documents.json", import.meta.url))
    .then((response) => response.json())
    .then((documents) => {
      const ids = new Map();
      for (const [id, text] of Object.entries(documents)) {
        const name = /^\s*(?:query|mutation|subscription)\s+(\w+)/.exec(text)?.[1];
        if (name) ids.set(name, id);
      }
      return ids;
    });
  return manifest;
}

async function documentId(operationName) {
  const id = (await documentIds()).get(operationName);
  if (!id) throw new ApiError(`no operation ${operationName} in persisted-documents.json`, "NO_SUCH_OPERATION");
  return id;
}

/** Runs a registered query or mutation; resolves to `data`, rejects with an ApiError. */
export async function request(operationName, variables = {}) {
  const id = await documentId(operationName);
  let response;
  try {
    response = await fetch(`${config.api}/graphql`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/graphql-response+json, application/json",
        "x-api-key": config.key,
      },
      body: JSON.stringify({ documentId: `sha256:${id}`, operationName, variables }),
    });
  } catch {
    // A refused CORS preflight looks like this too: the origin is not allowed.
    throw new ApiError("无法连接到服务，请稍后再试", "NETWORK");
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`服务返回了 HTTP ${response.status}`, `HTTP_${response.status}`);
  }
  const error = body.errors?.[0];
  if (error) throw new ApiError(error.message, error.extensions?.code, error.extensions?.reason);
  return body.data;
}

/**
 * Subscribes to a registered subscription; calls `next(data)` for each push and `error(e)` on
 * errors. Reconnects with a growing pause when the connection drops (the server sends the
 * current state first, so nothing is missed on screen). Returns a function that stops it.
 */
export function subscribe(operationName, variables, { next, error }) {
  let socket;
  let stopped = false;
  let attempt = 0;
  const open = async () => {
    const id = await documentId(operationName);
    socket = new WebSocket(`${config.api.replace(/^http/, "ws")}/graphql/ws`, "graphql-transport-ws");
    socket.onopen = () => socket.send(JSON.stringify({ type: "connection_init", payload: { apiKey: config.key } }));
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "connection_ack") {
        attempt = 0;
        const extensions = { persistedQuery: { version: 1, sha256Hash: id } };
        const payload = { query: "", operationName, variables, extensions };
        socket.send(JSON.stringify({ id: "1", type: "subscribe", payload }));
      } else if (message.type === "ping") {
        socket.send(JSON.stringify({ type: "pong" }));
      } else if (message.type === "next") {
        const failure = message.payload.errors?.[0];
        if (failure) error?.(new ApiError(failure.message, failure.extensions?.code, failure.extensions?.reason));
        else next(message.payload.data);
      } else if (message.type === "error") {
        error?.(new ApiError(message.payload?.[0]?.message ?? "subscription refused", "SUBSCRIPTION_ERROR"));
      }
    };
    socket.onclose = () => {
      if (!stopped) setTimeout(open, Math.min(30_000, 1_000 * 2 ** attempt++));
    };
  };
  open().catch((e) => error?.(e));
  return () => {
    stopped = true;
    socket?.close();
  };
}

/** Fen as yuan, the way the page shows money: ¥1,234.50 */
export function yuan(fen) {
  return `¥${(fen / 100).toLocaleString("zh-CN", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}
