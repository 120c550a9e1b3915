// Agora's only script: it keeps the live parts of a page live. An element with
// data-live="<url>" has its content replaced by each server-sent event the URL
// streams (HTML the server rendered); an "end" event closes the stream. Without
// this script every page still works: the order page then reloads itself while
// the order is pending.
"use strict";
document.querySelectorAll("[data-live]").forEach(function (el) {
  var source = new EventSource(el.getAttribute("data-live"));
  var replace = function (e) { el.innerHTML = e.data; };
  source.addEventListener("status", replace);
  source.addEventListener("state", replace);
  source.addEventListener("end", function () { source.close(); });
});
