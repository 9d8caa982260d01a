// A tiny SVG vocabulary for the results chart (no dependencies), rendered to
// PNG with rsvg-convert (Debian package librsvg2-bin).
export const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export const COLORS = {
  ours: '#1565c0',
  peer: '#ef6c00',
  target: '#c62828',
  grid: '#e0e0e0',
  axis: '#424242',
  text: '#212121',
  muted: '#757575',
};

export function text(
  x: number,
  y: number,
  s: string,
  o: { size?: number; anchor?: 'start' | 'middle' | 'end'; weight?: string; fill?: string; rotate?: number } = {},
): string {
  const rot = o.rotate ? ` transform="rotate(${o.rotate} ${x} ${y})"` : '';
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" font-family="DejaVu Sans, sans-serif" font-size="${o.size ?? 12}" text-anchor="${o.anchor ?? 'start'}" font-weight="${o.weight ?? 'normal'}" fill="${o.fill ?? COLORS.text}"${rot}>${esc(s)}</text>`;
}

export function line(
  x1: number,
  y1: number,
  x2: number,
  y2: number,
  stroke: string,
  o: { width?: number; dash?: string; opacity?: number } = {},
): string {
  return `<line x1="${x1.toFixed(1)}" y1="${y1.toFixed(1)}" x2="${x2.toFixed(1)}" y2="${y2.toFixed(1)}" stroke="${stroke}" stroke-width="${o.width ?? 1}"${o.dash ? ` stroke-dasharray="${o.dash}"` : ''}${o.opacity !== undefined ? ` stroke-opacity="${o.opacity}"` : ''}/>`;
}

export function rect(
  x: number,
  y: number,
  w: number,
  h: number,
  fill: string,
  o: { stroke?: string; opacity?: number; rx?: number } = {},
): string {
  return `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${Math.max(0, w).toFixed(1)}" height="${Math.max(0, h).toFixed(1)}" fill="${fill}"${o.stroke ? ` stroke="${o.stroke}"` : ''}${o.opacity !== undefined ? ` fill-opacity="${o.opacity}"` : ''}${o.rx ? ` rx="${o.rx}"` : ''}/>`;
}

export function circle(x: number, y: number, r: number, fill: string, opacity = 0.75): string {
  return `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${r}" fill="${fill}" fill-opacity="${opacity}"/>`;
}

export function polyline(points: Array<[number, number]>, stroke: string, width = 2, dash?: string): string {
  if (points.length === 0) return '';
  return `<polyline fill="none" stroke="${stroke}" stroke-width="${width}"${dash ? ` stroke-dasharray="${dash}"` : ''} stroke-linejoin="round" points="${points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ')}"/>`;
}

export interface Scale {
  (v: number): number;
  ticks: Array<{ v: number; label: string }>;
}

export function linearScale(
  d0: number,
  d1: number,
  r0: number,
  r1: number,
  fmt: (v: number) => string,
  tickCount = 5,
): Scale {
  const span = d1 - d0 || 1;
  const f = ((v: number) => r0 + ((v - d0) / span) * (r1 - r0)) as Scale;
  const raw = span / tickCount;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  f.ticks = [];
  for (let v = Math.ceil(d0 / step) * step; v <= d1 + 1e-9; v += step) f.ticks.push({ v, label: fmt(v) });
  return f;
}

export function logScale(d0: number, d1: number, r0: number, r1: number, fmt: (v: number) => string): Scale {
  const l0 = Math.log10(d0);
  const l1 = Math.log10(d1);
  const f = ((v: number) => r0 + ((Math.log10(Math.max(v, d0 / 10)) - l0) / (l1 - l0)) * (r1 - r0)) as Scale;
  f.ticks = [];
  for (let e = Math.floor(l0); e <= Math.ceil(l1); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= d0 * 0.999 && v <= d1 * 1.001) f.ticks.push({ v, label: fmt(v) });
    }
  }
  return f;
}

export interface Panel {
  x: number;
  y: number;
  w: number;
  h: number;
  /** Plot area inside the panel. */
  px: number;
  py: number;
  pw: number;
  ph: number;
}

export function panel(x: number, y: number, w: number, h: number, margins = { l: 70, r: 20, t: 46, b: 48 }): Panel {
  return {
    x,
    y,
    w,
    h,
    px: x + margins.l,
    py: y + margins.t,
    pw: w - margins.l - margins.r,
    ph: h - margins.t - margins.b,
  };
}

export function frame(p: Panel, title: string, subtitle?: string): string {
  return [
    rect(p.x + 4, p.y + 4, p.w - 8, p.h - 8, '#ffffff', { stroke: '#cfcfcf', rx: 6 }),
    text(p.x + 16, p.y + 24, title, { size: 15, weight: 'bold' }),
    subtitle ? text(p.x + 16, p.y + 40, subtitle, { size: 11, fill: COLORS.muted }) : '',
  ].join('\n');
}

export function xAxis(p: Panel, s: Scale, label: string): string {
  const out = [line(p.px, p.py + p.ph, p.px + p.pw, p.py + p.ph, COLORS.axis)];
  for (const t of s.ticks) {
    const x = s(t.v);
    out.push(line(x, p.py, x, p.py + p.ph, COLORS.grid));
    out.push(text(x, p.py + p.ph + 15, t.label, { size: 10.5, anchor: 'middle', fill: COLORS.muted }));
  }
  out.push(text(p.px + p.pw / 2, p.py + p.ph + 34, label, { size: 11.5, anchor: 'middle' }));
  return out.join('\n');
}

export function yAxis(p: Panel, s: Scale, label: string): string {
  const out = [line(p.px, p.py, p.px, p.py + p.ph, COLORS.axis)];
  for (const t of s.ticks) {
    const y = s(t.v);
    out.push(line(p.px, y, p.px + p.pw, y, COLORS.grid));
    out.push(text(p.px - 6, y + 4, t.label, { size: 10.5, anchor: 'end', fill: COLORS.muted }));
  }
  out.push(text(p.x + 18, p.py + p.ph / 2, label, { size: 11.5, anchor: 'middle', rotate: -90 }));
  return out.join('\n');
}

export function legend(x: number, y: number, items: Array<{ label: string; color: string; dash?: string }>): string {
  const out: string[] = [];
  let cx = x;
  for (const it of items) {
    out.push(line(cx, y - 4, cx + 18, y - 4, it.color, { width: 3, dash: it.dash }));
    out.push(text(cx + 23, y, it.label, { size: 11 }));
    cx += 30 + it.label.length * 6.6;
  }
  return out.join('\n');
}

export function placeholder(p: Panel, message: string): string {
  return [
    rect(p.px, p.py, p.pw, p.ph, '#fafafa', { stroke: '#e0e0e0' }),
    text(p.px + p.pw / 2, p.py + p.ph / 2, message, { size: 13, anchor: 'middle', fill: COLORS.muted }),
  ].join('\n');
}
