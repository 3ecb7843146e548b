// exports of core/src/train (owned by the engineer working on train)
export {};
