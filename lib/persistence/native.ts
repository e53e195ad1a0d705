/** `annvault/persistence/native`: the key-value adapter over annvault's own engine. */
export { NativeAdapter, type NativeAdapterOptions, type NativeAdapterError } from './native-adapter'
