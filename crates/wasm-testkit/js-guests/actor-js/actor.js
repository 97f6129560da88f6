// An actor in JavaScript (world airssys:actor/actor@0.1.0), driven by text/plain
// commands like the Rust `actor-worker`: `echo TEXT`, `self`, `count` (the instance's
// own counter), `get`, `send TO TEXT` (replies `ok` or `error: TAG`), `ask TO TEXT`
// (replies `asked ID`), `last` (the latest reply or failed request it received),
// `throw` (handle throws a string: its `err`) and `crash` (it throws an Error: a trap) —
// failures its supervisor restarts. Replies go to requests only.
import { selfAddress, send, request } from 'airssys:actor/messaging@0.1.0';

const decoder = new TextDecoder();
const encoder = new TextEncoder();
let count = 0;
let last = '';

function errorTag(e) {
  const payload = e && e.payload !== undefined ? e.payload : e;
  return payload && payload.tag ? `${payload.tag}: ${payload.val}` : String(e);
}

export const handler = {
  init() {},

  handle(envelope, payload) {
    const text = decoder.decode(payload);
    if (envelope.kind === 'reply' || envelope.kind === 'request-failed') {
      last = `${envelope.kind} ${envelope.correlationId} ${text}`;
      return undefined;
    }
    const space = text.indexOf(' ');
    const command = space < 0 ? text : text.slice(0, space);
    const rest = space < 0 ? '' : text.slice(space + 1);
    let reply;
    switch (command) {
      case 'echo':
        reply = rest;
        break;
      case 'self':
        reply = selfAddress();
        break;
      case 'count':
        count += 1;
        reply = String(count);
        break;
      case 'get':
        reply = String(count);
        break;
      case 'last':
        reply = last;
        break;
      case 'send': {
        const at = rest.indexOf(' ');
        try {
          send(rest.slice(0, at), 'text/plain', encoder.encode(rest.slice(at + 1)), 'normal');
          reply = 'ok';
        } catch (e) {
          reply = `error: ${errorTag(e)}`;
        }
        break;
      }
      case 'ask': {
        const at = rest.indexOf(' ');
        try {
          const id = request(rest.slice(0, at), 'text/plain', encoder.encode(rest.slice(at + 1)), 1000);
          reply = `asked ${id}`;
        } catch (e) {
          reply = `error: ${errorTag(e)}`;
        }
        break;
      }
      case 'throw':
        // A thrown string is the export's `err`: a handler error.
        throw 'asked to throw';
      case 'crash':
        // Anything else thrown cannot be an `err` string: the component traps.
        throw new Error('asked to crash');
      default:
        throw new Error(`unknown command ${command}`);
    }
    if (envelope.kind !== 'request') {
      return undefined;
    }
    return { contentType: 'text/plain', payload: encoder.encode(reply) };
  },

  stop() {},
};
