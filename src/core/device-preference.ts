/** Where the kernels run: `auto` picks CUDA only when its provider really loads. */
export type DevicePreference = 'auto' | 'cpu' | 'cuda';
