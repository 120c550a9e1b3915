// Boots the AsyncAPI React component for the apidocs messages page.
//
// Like docs.js, this lives in its own file so the page needs no inline script;
// the document's URL is handed over in a data attribute.
(function () {
  "use strict";
  var el = document.getElementById("asyncapi");
  AsyncApiStandalone.render(
    {
      schema: { url: el.dataset.specUrl, options: { method: "GET" } },
      config: {
        show: { sidebar: true, errors: true },
        sidebar: { showOperations: "byDefault" },
      },
    },
    el
  );
})();
