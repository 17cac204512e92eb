// A virtualised list: only the rows in view (plus a margin) are in the DOM, so a list
// of 5,000 talents, or a board column of 2,000 cards, scrolls as smoothly as one of 50.
// Rows have one fixed height. The list is focusable so arrows and Page Down scroll it.
import { useState } from "preact/hooks";

export function VirtualList({ items, rowHeight, height, render, label, className = "" }) {
  const [top, setTop] = useState(0);
  const margin = 8;
  const first = Math.max(0, Math.floor(top / rowHeight) - margin);
  const last = Math.min(items.length, Math.ceil((top + height) / rowHeight) + margin);
  const rows = [];
  for (let i = first; i < last; i++) {
    rows.push(
      <div class="vrow" role="listitem" style={{ top: `${i * rowHeight}px`, height: `${rowHeight}px` }} key={items[i].id ?? i}>
        {render(items[i], i)}
      </div>,
    );
  }
  return (
    <div
      class={`vlist ${className}`}
      role="list"
      tabIndex={0}
      aria-label={label}
      style={{ height: `${height}px` }}
      onScroll={(e) => setTop(e.currentTarget.scrollTop)}
    >
      <div class="vspace" style={{ height: `${items.length * rowHeight}px` }}>
        {rows}
      </div>
    </div>
  );
}
