/**
 * The one way library code reads tensor values: asynchronously (a GPU tensor cannot be read synchronously in Node),
 * failing with a clear error when the GPU device has been lost instead of hanging or returning zeros.
 */
import type * as tf from '@tensorflow/tfjs';
import { checkDevice } from './webgpu';

export async function readValues(t: tf.Tensor): Promise<Float32Array> {
  checkDevice();
  const data = await t.data();
  checkDevice();
  return data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>);
}

export async function readInts(t: tf.Tensor): Promise<Int32Array> {
  checkDevice();
  const data = await t.data();
  checkDevice();
  return data instanceof Int32Array ? data : Int32Array.from(data as ArrayLike<number>);
}

/** A scalar's value. */
export async function readScalar(t: tf.Tensor): Promise<number> {
  return (await readValues(t))[0];
}
