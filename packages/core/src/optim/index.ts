// exports of core/src/optim (owned by the engineer working on optim)
export {};
