/** Training events, emitted by the trainer and rendered by the CLI (progress bar or plain lines) and the JSONL log. */
export type TrainingEvent =
  | { type: 'stage'; stage: string; message?: string }
  | { type: 'step'; stage: string; step: number; totalSteps: number; epoch: number; loss: number; lr: number }
  | { type: 'epoch'; stage: string; epoch: number; totalEpochs: number; loss: number; metrics?: Record<string, number> }
  | { type: 'validation'; stage: string; step: number; metrics: Record<string, number>; best: boolean }
  | { type: 'ranking'; stage: string; epoch: number; ranking: Array<{ feature: string; score: number }> }
  | { type: 'checkpoint'; stage: string; path: string; step: number }
  | { type: 'done'; stage: string; metrics: Record<string, number> };

export type TrainingListener = (event: TrainingEvent) => void;
