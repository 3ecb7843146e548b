// exports of core/src/models (owned by the engineer working on models)
export {};
