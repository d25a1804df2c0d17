// Image: a VM image (qcow2 or raw disk, or kernel + initrd). The spec declares each
// file's sha256; uploads are verified against it and stored content-addressed.
import { Type } from 'typebox';
import { ARCHITECTURES, type Architecture, oneOf, strictObject, Timestamp } from '../common.js';
import type { KindDef } from '../kind.js';
import type { FieldError } from '../problem.js';

/** VM images (qcow2, raw, kernel-initrd), and OCI images for containers. */
export const IMAGE_FORMATS = ['qcow2', 'raw', 'kernel-initrd', 'oci'] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];
export const IMAGE_FILES = ['disk', 'kernel', 'initrd', 'oci'] as const;
export type ImageFile = (typeof IMAGE_FILES)[number];

/** Which files each format needs; the others are not allowed. */
export const FORMAT_FILES: Record<ImageFormat, { required: ImageFile[]; optional: ImageFile[] }> = {
  qcow2: { required: ['disk'], optional: [] },
  raw: { required: ['disk'], optional: [] },
  'kernel-initrd': { required: ['kernel'], optional: ['initrd'] },
  /** An OCI image layout as a tar archive (what `umoci`, `skopeo copy oci-archive:` and `docker save` make). */
  oci: { required: ['oci'], optional: [] },
};

const FileRef = strictObject({
  sha256: Type.String({ pattern: '^[a-f0-9]{64}$', description: 'lower-case hex SHA-256 of the content' }),
});

export const ImageSpec = strictObject({
  description: Type.Optional(Type.String({ maxLength: 2000 })),
  format: oneOf(IMAGE_FORMATS),
  architecture: Type.Optional(oneOf(ARCHITECTURES)),
  files: strictObject({
    disk: Type.Optional(FileRef),
    kernel: Type.Optional(FileRef),
    initrd: Type.Optional(FileRef),
    oci: Type.Optional(FileRef),
  }),
  ref: Type.Optional(
    Type.String({
      pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$',
      description: 'oci only: the tag in the image layout to run (default latest)',
    }),
  ),
  cmdline: Type.Optional(
    Type.String({ maxLength: 4096, description: 'kernel command line (kernel-initrd only)' }),
  ),
});
export interface ImageSpec {
  description?: string;
  format: ImageFormat;
  architecture?: Architecture;
  files: Partial<Record<ImageFile, { sha256: string }>>;
  cmdline?: string;
  ref?: string;
}

export const IMAGE_PHASES = ['AwaitingUpload', 'Available'] as const;
export const ImageStatus = strictObject({
  phase: oneOf(IMAGE_PHASES),
  files: Type.Record(
    Type.String(),
    strictObject({ sha256: Type.String(), size: Type.Integer(), uploadedAt: Timestamp }),
  ),
  oci: Type.Optional(
    strictObject(
      {
        ref: Type.String(),
        manifest: Type.String({ description: 'digest of the manifest that runs' }),
        layers: Type.Integer(),
        bytes: Type.Integer({ description: 'of the config and layers' }),
      },
      "the OCI layout as checked at upload: the tag that runs, its manifest's digest, its layers",
    ),
  ),
});
export interface ImageStatus {
  phase: (typeof IMAGE_PHASES)[number];
  files: Partial<Record<ImageFile, { sha256: string; size: number; uploadedAt: string }>>;
  oci?: { ref: string; manifest: string; layers: number; bytes: number };
}

export function imagePhase(spec: ImageSpec, files: ImageStatus['files']): ImageStatus['phase'] {
  const declared = Object.entries(spec.files).filter(([, f]) => f);
  return declared.every(([k, f]) => files[k as ImageFile]?.sha256 === f?.sha256)
    ? 'Available'
    : 'AwaitingUpload';
}

function imageErrors(spec: ImageSpec): FieldError[] {
  const rule = FORMAT_FILES[spec.format];
  const errors: FieldError[] = [];
  for (const f of rule.required)
    if (!spec.files[f])
      errors.push({ path: `spec.files.${f}`, message: `is required for format ${spec.format}` });
  for (const f of IMAGE_FILES)
    if (spec.files[f] && !rule.required.includes(f) && !rule.optional.includes(f))
      errors.push({ path: `spec.files.${f}`, message: `is not used by format ${spec.format}` });
  if (spec.cmdline !== undefined && spec.format !== 'kernel-initrd')
    errors.push({ path: 'spec.cmdline', message: 'only kernel-initrd images take a kernel command line' });
  if (spec.ref !== undefined && spec.format !== 'oci')
    errors.push({ path: 'spec.ref', message: 'only oci images name a tag in their layout' });
  return errors;
}

export const imageKind: KindDef<ImageSpec, ImageStatus> = {
  kind: 'Image',
  plural: 'images',
  parent: 'project',
  aliases: ['image', 'images', 'img'],
  description: 'A VM or container image: its files are uploaded separately and verified by sha256.',
  spec: ImageSpec,
  status: ImageStatus,
  creatable: true,
  filters: [],
  columns: () => ({}),
  initialStatus: () => ({ phase: 'AwaitingUpload', files: {} }),
  // Uploaded files stay valid only while the declared checksum is unchanged.
  onSpecChange: (spec, status) => {
    const files: ImageStatus['files'] = {};
    for (const [k, f] of Object.entries(status.files)) {
      if (f && spec.files[k as ImageFile]?.sha256 === f.sha256) files[k as ImageFile] = f;
    }
    // The layout was checked for the tag the spec named then.
    const oci =
      files.oci && status.oci && (spec.ref ?? status.oci.ref) === status.oci.ref ? status.oci : undefined;
    return { phase: imagePhase(spec, files), files, ...(oci ? { oci } : {}) };
  },
  check: imageErrors,
};
