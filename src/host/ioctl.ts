/** ioctl request numbers from the Linux _IOC encoding (include/uapi/asm-generic/ioctl.h):
 *   bits 0..7 number, 8..15 type, 16..29 argument size, 30..31 direction. */
const IOC_NRSHIFT = 0;
const IOC_TYPESHIFT = 8;
const IOC_SIZESHIFT = 16;
const IOC_DIRSHIFT = 30;
const IOC_NONE = 0;
const IOC_WRITE = 1;
const IOC_READ = 2;
const IOC_SIZEMASK = (1 << 14) - 1;

function ioc(dir: number, type: number, nr: number, size: number): number {
  if (size < 0 || size > IOC_SIZEMASK) throw new RangeError(`ioctl argument size ${size} does not fit _IOC`);
  // >>> 0 keeps the result an unsigned 32-bit number (the direction bits reach bit 31).
  return ((dir << IOC_DIRSHIFT) | (type << IOC_TYPESHIFT) | (nr << IOC_NRSHIFT) | (size << IOC_SIZESHIFT)) >>> 0;
}
export const IO = (type: number, nr: number): number => ioc(IOC_NONE, type, nr, 0);
export const IOR = (type: number, nr: number, size: number): number => ioc(IOC_READ, type, nr, size);
export const IOW = (type: number, nr: number, size: number): number => ioc(IOC_WRITE, type, nr, size);
export const IOWR = (type: number, nr: number, size: number): number => ioc(IOC_READ | IOC_WRITE, type, nr, size);

