// Similarity heatmaps: one canvas pixel per patch-grid cell (CSS scales it over the page image, pixelated).
// A cell's value is min-max normalised over the shown map to t in [0, 1]; it is painted with a colour from a
// small "inferno"-like ramp and alpha = round(255 * t), so the hottest cell is fully opaque and the coldest
// transparent (the page stays readable). The opacity slider scales the whole canvas (CSS opacity).

const RAMP = [
  [0, [0, 0, 4]],
  [0.25, [87, 16, 110]],
  [0.5, [188, 55, 84]],
  [0.75, [249, 142, 9]],
  [1, [252, 255, 164]],
];

function colour(t) {
  for (let i = 1; i < RAMP.length; i += 1) {
    const [t1, c1] = RAMP[i];
    if (t <= t1) {
      const [t0, c0] = RAMP[i - 1];
      const f = (t - t0) / (t1 - t0);
      return c0.map((v, k) => Math.round(v + f * (c1[k] - v)));
    }
  }
  return RAMP[RAMP.length - 1][1];
}

// The whole query's map: per cell, the max over query tokens (as MaxSim takes the max per token).
export function combined(maps) {
  const rows = maps[0].length;
  const cols = maps[0][0].length;
  const out = Array.from({ length: rows }, () => new Array(cols).fill(-Infinity));
  for (const map of maps) {
    for (let r = 0; r < rows; r += 1) {
      for (let c = 0; c < cols; c += 1) if (map[r][c] > out[r][c]) out[r][c] = map[r][c];
    }
  }
  return out;
}

export function argmax(grid) {
  let best = [0, 0];
  for (let r = 0; r < grid.length; r += 1) {
    for (let c = 0; c < grid[r].length; c += 1) if (grid[r][c] > grid[best[0]][best[1]]) best = [r, c];
  }
  return best;
}

export function paint(canvas, grid) {
  const rows = grid.length;
  const cols = grid[0].length;
  canvas.width = cols;
  canvas.height = rows;
  let lo = Infinity;
  let hi = -Infinity;
  for (const line of grid) {
    for (const v of line) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  }
  const span = hi - lo || 1;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(cols, rows);
  for (let r = 0; r < rows; r += 1) {
    for (let c = 0; c < cols; c += 1) {
      const t = (grid[r][c] - lo) / span;
      const [red, green, blue] = colour(t);
      const i = 4 * (r * cols + c);
      image.data[i] = red;
      image.data[i + 1] = green;
      image.data[i + 2] = blue;
      image.data[i + 3] = Math.round(255 * t);
    }
  }
  ctx.putImageData(image, 0, 0);
}
