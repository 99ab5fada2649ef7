// Swagger UI for the merged document; each service's own document can be picked from the top bar.
// No external requests: the spec validator badge is off and every asset comes from this gateway.
(function () {
  "use strict";
  var services = ["registry", "pledges", "notifier", "publisher"];
  var urls = [{ url: "/v1/openapi.json", name: "KSBB API (semua layanan / all services)" }];
  services.forEach(function (name) { urls.push({ url: "/svc/" + name + "/openapi.json", name: name }); });
  window.ui = window.SwaggerUIBundle({
    urls: urls,
    "urls.primaryName": urls[0].name,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [window.SwaggerUIBundle.presets.apis, window.SwaggerUIStandalonePreset],
    layout: "StandaloneLayout"
  });
}());
