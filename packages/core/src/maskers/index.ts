// exports of core/src/maskers (owned by the engineer working on maskers)
export {};
