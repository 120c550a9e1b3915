// Agora's only script: it keeps the live parts of a page live and lets a rider
// choose places on the map. Without it every page still works: the order and
// ride pages reload themselves while they change, and the ride form has lists
// of places.
"use strict";

// An element with data-live="<url>" opens an event stream of HTML the server
// rendered. Each event named in data-events (default: "status state") replaces
// the content of the element whose data-event names it, or else of the element
// itself; an "end" event closes the stream.
document.querySelectorAll("[data-live]").forEach(function (el) {
  var source = new EventSource(el.getAttribute("data-live"));
  (el.getAttribute("data-events") || "status state").split(" ").forEach(function (name) {
    source.addEventListener(name, function (e) {
      var target = document.querySelector('[data-event="' + name + '"]') || el;
      target.innerHTML = e.data;
    });
  });
  source.addEventListener("end", function () { source.close(); });
});

// A map with data-pick="<form id>" fills that form's pickup, then drop-off,
// with the place clicked (a click after both starts again from the pickup) and
// submits it. data-projection is "west north kx ky": the server draws a place
// at x = (lng - west) * kx, y = (north - lat) * ky.
document.querySelectorAll("svg[data-pick]").forEach(function (map) {
  map.addEventListener("click", function (e) {
    var form = document.getElementById(map.getAttribute("data-pick"));
    var screen = map.getScreenCTM();
    if (!form || !screen) { return; }
    var p = new DOMPoint(e.clientX, e.clientY).matrixTransform(screen.inverse());
    var k = map.getAttribute("data-projection").split(" ").map(Number);
    var value = (k[1] - p.y / k[3]).toFixed(6) + "," + (k[0] + p.x / k[2]).toFixed(6);
    var pickup = form.elements.pickup, dropoff = form.elements.dropoff;
    var target = pickup.value && !dropoff.value ? dropoff : pickup;
    if (target === pickup) { dropoff.value = ""; }
    var option = document.createElement("option");
    option.value = value;
    option.textContent = "Chosen on the map";
    target.add(option, 1);
    target.value = value;
    form.submit();
  });
});
