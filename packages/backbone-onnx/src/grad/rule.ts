/**
 * The contract of a per-op gradient rule: given the forward node and the gradients of its outputs, emit nodes that
 * compute the gradients of the inputs that need one.
 */
import type { Emitter } from './emitter.js';
import type { GraphInfo } from './graph-info.js';
import type { Dim, INodeProto } from './proto.js';

export interface RuleContext {
  node: INodeProto;
  e: Emitter;
  info: GraphInfo;
  /** Default-domain opset of the forward graph. */
  opset: number;
  /** Name of input i ('' when absent). */
  x(i: number): string;
  /** Name of output i ('' when absent). */
  y(i: number): string;
  /** Gradient flowing into output i, or undefined when none reaches it (zero). */
  g(i: number): string | undefined;
  /** Whether input i needs a gradient (it depends on a `wrt` tensor). */
  need(i: number): boolean;
  /** Static shape of a forward tensor, when inferred. */
  shapeOf(name: string): Dim[] | undefined;
  rankOf(name: string): number | undefined;
  /** Rank of a forward tensor, or a UserError naming the node when it cannot be inferred. */
  requireRank(name: string): number;
  /** Static values of a small constant tensor (initializer or Constant node). */
  constOf(name: string): number[] | undefined;
  /** The forward node that produces a tensor (undefined for inputs and initializers). */
  producerOf(name: string): INodeProto | undefined;
  /** Whether a tensor's own gradient is requested (an intermediate in wrt gets exactly its gradient, no shortcuts). */
  isWrt(name: string): boolean;
}

/** Returns one gradient per input (undefined for none); only entries with need(i) are used. */
export type GradRule = (c: RuleContext) => (string | undefined)[];
