/** `annvault/persistence/native`: the key-value adapter over annvault's own engine. */
export { NativeAdapter, SYNC_GET_MAX_BYTES, type NativeAdapterOptions, type NativeAdapterError, type NativeAdapterProgress, type NativeAdapterCheckpointOptions } from './native-adapter'
