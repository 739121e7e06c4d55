/**
 * VERSION: "probe plugin version support". Needs no CNI_CONTAINERID, netns or
 * network config beyond an optional {"cniVersion": …} on stdin.
 */
import { CURRENT_VERSION, SUPPORTED_VERSIONS, type VersionResult } from './types.ts';

export function versionResult(): VersionResult {
  return { cniVersion: CURRENT_VERSION, supportedVersions: SUPPORTED_VERSIONS };
}
