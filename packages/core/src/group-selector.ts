import type { Tensor } from './autograd/tensor.js';
import type { GroupComponentContext } from './group-generator.js';

/**
 * SOP's trainable group selector (methods §2.3): weights α [B, m, C] over the m groups per class, from each group's
 * key (the backbone's pooled hidden state on the masked input, or the group's output vector). The SOP output is
 * y_c = Σ_j α_{j,c} · c_j · z_{j,c}.
 */
export interface GroupSelector {
  readonly name: string;
  /** 'hidden': keys are the backbone's pooled hidden state per group; 'output': the group's output vector. */
  readonly keys: 'hidden' | 'output';
  /** Width k of the keys. */
  readonly keyDim: number;
  /** Trainable parameters by name (saved in checkpoints under `selector.<name>`). */
  parameters(): Record<string, Tensor>;
  /** α [B, m, C] from keys [B, m, k]; each column (class) over groups sums to 1 for sparsemax selectors. */
  select(keys: Tensor): Tensor;
}

/** DI slot 'selector' (`model: {use: sop, selector: NAME}`); built-in: `sparsemax`. */
export interface GroupSelectorFactory {
  readonly name: string;
  create(context: GroupComponentContext, options: Record<string, unknown>): GroupSelector;
}
