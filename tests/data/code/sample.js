import fs from "fs";

/** Read a config file. */
export function readConfig(path) {
  return JSON.parse(fs.readFileSync(path, "utf8"));
}

const LIMIT = 10;

export const double = (x) => x * 2;

class Cache {
  constructor() {
    this.items = new Map();
  }

  get(key) {
    return this.items.get(key);
  }
}
