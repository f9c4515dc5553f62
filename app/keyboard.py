"""Keyboard shortcuts keep working after any click (issue 13 item 7).

Streamlit ignores shortcut keys while focus sits in an input, and a clicked toggle, radio, slider or chosen
selectbox option keeps the focus, so the number keys silently stopped after the first click. This constant
script (no user text in it) hands the focus back to the page once such a widget has taken its value.
"""
from __future__ import annotations

import streamlit as st

_FOCUS_BACK = """
<script>
(() => {
  if (window.__medsslFocusBack) { return; }
  window.__medsslFocusBack = true;
  const grabs = 'input[type=checkbox], input[type=radio], [role=radio], [role=switch], [role=checkbox], '
              + '[role=slider], [role=option], [role=combobox]';
  const release = () => {
    const active = document.activeElement;
    if (active && active !== document.body && active.matches(grabs)) { active.blur(); }
  };
  for (const kind of ['click', 'change', 'pointerup']) {
    document.addEventListener(kind, (event) => {
      const target = event.target instanceof Element ? event.target : null;
      if (target && target.closest('label, ' + grabs)) { setTimeout(release, 0); }
    }, true);
  }
})();
</script>
"""


def keep_shortcuts_alive() -> None:
    st.html(_FOCUS_BACK, unsafe_allow_javascript=True)
