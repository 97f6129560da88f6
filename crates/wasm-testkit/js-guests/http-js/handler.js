// An HTTP handler in JavaScript, componentized by componentize-js (StarlingMonkey)
// through its `fetch` event. Paths:
//   /            -> "hello from javascript: METHOD PATH"
//   /echo        -> the request body, back
//   /fetch?url=U -> "status N\nBODY" of a GET of U (an outgoing request, checked
//                   against [capabilities.http]) or "error MESSAGE"
//   /throw       -> throws an Error (the server answers 500; the message must stay in
//                   the server's log)
//   /loop        -> loops without end (the call's fuel or timeout ends it)
addEventListener('fetch', (event) => event.respondWith(handle(event.request)));

async function handle(request) {
  const url = new URL(request.url);
  switch (url.pathname) {
    case '/echo':
      return new Response(await request.text());
    case '/fetch': {
      try {
        const response = await fetch(url.searchParams.get('url'));
        return new Response(`status ${response.status}\n${await response.text()}`);
      } catch (error) {
        return new Response(`error ${error}`);
      }
    }
    case '/throw':
      throw new Error('secret-guest-detail from javascript');
    case '/loop':
      for (;;) {}
    default:
      return new Response(`hello from javascript: ${request.method} ${url.pathname}\n`);
  }
}
