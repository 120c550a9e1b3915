// Boots Swagger UI for the apidocs page.
//
// This lives in its own file rather than an inline <script> so the page's
// Content-Security-Policy can stay at script-src 'self' with no
// 'unsafe-inline' and no per-request nonce. The spec URL is handed over in a
// data attribute for the same reason.
(function () {
  "use strict";
  var el = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: el.dataset.specUrl,
    domNode: el,
    deepLinking: true,
    displayRequestDuration: true,
    // The default validatorUrl makes every page view fetch a badge from
    // validator.swagger.io; null turns that off so the page stays offline.
    validatorUrl: null,
    // Never let ?url=/?configUrl= in the address bar swap in another
    // document (a classic Swagger UI phishing/XSS vector).
    queryConfigEnabled: false,
  });
})();
