/**
 * A deterministic ustar archive holding one regular file: mode 0644, uid/gid 0 (root/root), mtime 0, then
 * the two zero end blocks. Same name and content, same bytes.
 */

/** The file's content, or its size and a function that writes it in place (large content, no extra copy). */
export type TarContent = Buffer | { sizeBytes: number; writeInto: (content: Buffer) => void };

function writeOctal(header: Buffer, offset: number, width: number, value: number): void {
  // width-1 octal digits, zero padded, then NUL
  header.write(`${value.toString(8).padStart(width - 1, "0")}\0`, offset, width, "ascii");
}

export function createTar(fileName: string, content: TarContent): Buffer {
  if (Buffer.byteLength(fileName) > 100) throw new Error(`tar file name too long: ${fileName}`);
  const size = Buffer.isBuffer(content) ? content.length : content.sizeBytes;
  const padded = Math.ceil(size / 512) * 512;
  const tar = Buffer.alloc(512 + padded + 1024); // header + content + two zero blocks
  const header = tar.subarray(0, 512);
  header.write(fileName, 0, 100, "utf8");
  writeOctal(header, 100, 8, 0o644); // mode
  writeOctal(header, 108, 8, 0); // uid
  writeOctal(header, 116, 8, 0); // gid
  writeOctal(header, 124, 12, size);
  writeOctal(header, 136, 12, 0); // mtime
  header.write("        ", 148, 8, "ascii"); // the checksum is computed with this field as spaces
  header.write("0", 156, 1, "ascii"); // regular file
  header.write("ustar\0", 257, 6, "ascii");
  header.write("00", 263, 2, "ascii");
  header.write("root", 265, 32, "ascii");
  header.write("root", 297, 32, "ascii");
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "ascii");
  const body = tar.subarray(512, 512 + size);
  if (Buffer.isBuffer(content)) content.copy(body);
  else content.writeInto(body);
  return tar;
}
