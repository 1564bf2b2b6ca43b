// oxidesk staff pages: the CSRF header on htmx requests, and the keyboard
// (j/k move in the queue, Enter opens, / searches, r replies, n notes,
// ? lists the keys, Escape closes the list). No inline script anywhere:
// the Content-Security-Policy forbids it.
(function () {
  'use strict';

  var meta = document.querySelector('meta[name="csrf-token"]');
  document.addEventListener('htmx:configRequest', function (e) {
    if (meta) { e.detail.headers['X-CSRF-Token'] = meta.content; }
  });

  var selected = null; // the data-number of the selected row

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll('tr.ticket-row'));
  }

  function mark() {
    rows().forEach(function (r) {
      var on = r.getAttribute('data-number') === selected;
      r.classList.toggle('selected', on);
      r.setAttribute('aria-selected', on ? 'true' : 'false');
    });
  }

  function move(step) {
    var all = rows();
    if (!all.length) { return; }
    var at = -1;
    for (var i = 0; i < all.length; i++) {
      if (all[i].getAttribute('data-number') === selected) { at = i; }
    }
    var next = at < 0 ? (step > 0 ? 0 : all.length - 1) : Math.min(all.length - 1, Math.max(0, at + step));
    selected = all[next].getAttribute('data-number');
    mark();
    all[next].scrollIntoView({ block: 'nearest' });
  }

  function openSelected() {
    var row = document.querySelector('tr.ticket-row.selected a.ticket-link');
    if (row) { window.location.href = row.getAttribute('href'); return true; }
    return false;
  }

  function focus(selector) {
    var el = document.querySelector(selector);
    if (el) { el.focus(); return true; }
    return false;
  }

  function help() {
    var d = document.getElementById('keys-help');
    if (d && !d.open && d.showModal) { d.showModal(); }
  }

  // Keep the selection when the rows are refreshed.
  document.addEventListener('htmx:afterSwap', mark);

  document.addEventListener('click', function (e) {
    var t = e.target;
    if (t && t.closest && t.closest('[data-keys-help]')) { help(); }
  });

  document.addEventListener('keydown', function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    var t = e.target;
    var tag = t && t.tagName;
    if (t && (t.isContentEditable || tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'SELECT')) {
      if (e.key === 'Escape') { t.blur(); }
      return;
    }
    var dialog = document.getElementById('keys-help');
    if (dialog && dialog.open) { return; } // the dialog handles Escape itself
    var handled = false;
    switch (e.key) {
      case 'j': move(1); handled = true; break;
      case 'k': move(-1); handled = true; break;
      case 'Enter':
        if (tag === 'A' || tag === 'BUTTON') { return; }
        handled = openSelected();
        break;
      case '/': handled = focus('#search input[name=q]'); break;
      case 'r': handled = focus('#reply textarea[name=body]'); break;
      case 'n': handled = focus('#note textarea[name=body]'); break;
      case '?': help(); handled = true; break;
      default: return;
    }
    if (handled) { e.preventDefault(); }
  });
}());
