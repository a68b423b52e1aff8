// Starts GraphiQL on the page the server renders (api/src/graphiql.rs). Everything it loads
// comes from this server: no request leaves the machine to draw it.
(function () {
  var root = document.getElementById('graphiql');
  var endpoint = new URL(root.dataset.endpoint, window.location.href);
  var subscriptions = new URL(root.dataset.subscriptionEndpoint, window.location.href);
  subscriptions.protocol = subscriptions.protocol === 'https:' ? 'wss:' : 'ws:';

  // GraphiQL sends the headers editor's headers (Authorization, X-Api-Key) as the WebSocket's
  // connection_init payload, so subscriptions sign in as queries do over HTTP.
  var fetcher = GraphiQL.createFetcher({
    url: endpoint.toString(),
    subscriptionUrl: subscriptions.toString(),
    fetch: function (url, options) {
      return window.fetch(url, Object.assign({}, options, { credentials: 'same-origin' }));
    },
  });

  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: root.dataset.defaultQuery,
      defaultEditorToolsVisibility: true,
    })
  );
})();
