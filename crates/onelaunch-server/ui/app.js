// onelaunch web UI: small progressive enhancements. Every page works without
// this script; with it, a launch page follows its job runs live.
'use strict';

(function () {
  // Selects marked data-autosubmit submit their form on change.
  for (const sel of document.querySelectorAll('select[data-autosubmit]')) {
    sel.addEventListener('change', () => sel.form && sel.form.submit());
  }

  // "Select all" checkboxes: data-select-all="<name of the checkboxes>".
  for (const all of document.querySelectorAll('input[data-select-all]')) {
    all.addEventListener('change', () => {
      const boxes = document.querySelectorAll('input[type=checkbox][name="' + all.dataset.selectAll + '"]');
      for (const b of boxes) b.checked = all.checked;
    });
  }

  // Live launch page: the server sends re-rendered fragments when anything
  // changes (server-sent events); without EventSource, poll instead.
  const live = document.querySelector('[data-live]');
  if (!live) return;
  const launch = live.dataset.launch;
  const totalEl = document.querySelector('[data-results-total]');
  let shownTotal = totalEl ? Number(totalEl.dataset.resultsTotal) : null;

  function apply(data) {
    const frags = data.fragments || {};
    for (const id of Object.keys(frags)) {
      const el = document.getElementById(id);
      if (el && el.innerHTML !== frags[id]) {
        el.innerHTML = frags[id];
        el.classList.remove('flash');
        void el.offsetWidth;
        el.classList.add('flash');
      }
    }
    const notice = document.getElementById('results-notice');
    if (notice && shownTotal !== null && data.results !== shownTotal) notice.hidden = false;
    document.documentElement.dataset.liveUpdates = String(Number(document.documentElement.dataset.liveUpdates || 0) + 1);
  }

  function poll() {
    fetch('/launch/' + launch + '/live', { credentials: 'same-origin' })
      .then((r) => (r.ok ? r.json() : null))
      .then((d) => { if (d) apply(d); })
      .catch(() => {})
      .finally(() => setTimeout(poll, 3000));
  }

  if ('EventSource' in window) {
    const es = new EventSource(live.dataset.live);
    es.addEventListener('update', (e) => {
      try { apply(JSON.parse(e.data)); } catch (_) { /* ignore a bad frame */ }
    });
    es.addEventListener('open', () => { document.documentElement.dataset.live = 'connected'; });
  } else {
    poll();
  }
})();

// Job form: show only the integration fields of the chosen type.
(function () {
  const sel = document.querySelector('select[data-integration]');
  if (!sel) return;
  const update = () => {
    for (const f of document.querySelectorAll('[data-for]')) {
      f.hidden = !f.dataset.for.split(' ').includes(sel.value);
    }
  };
  sel.addEventListener('change', update);
  update();
})();
