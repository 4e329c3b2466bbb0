// Starts Swagger UI on /docs. A served file rather than an inline script, so the page's
// Content-Security-Policy allows scripts from this service only.
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    displayOperationId: true,
    // the default shows a badge image fetched from validator.swagger.io
    validatorUrl: null,
    // an API key typed into "Authorize" lives only as long as the tab
    persistAuthorization: false,
  });
});
