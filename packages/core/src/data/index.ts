// exports of core/src/data (owned by the engineer working on data)
export {};
