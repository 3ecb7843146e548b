// exports of core/src/features (owned by the engineer working on features)
export {};
