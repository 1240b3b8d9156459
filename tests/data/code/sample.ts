export interface Point {
  x: number;
  y: number;
}

export type Pair = [Point, Point];

export class Shape {
  constructor(private points: Point[]) {}

  area(): number {
    return 0;
  }
}

export function distance(a: Point, b: Point): number {
  return Math.hypot(a.x - b.x, a.y - b.y);
}
