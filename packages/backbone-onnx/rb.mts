import { run } from '/work/main/packages/backbone-onnx/bench/grad.ts';
console.log(JSON.stringify(await run(), null, 1));
