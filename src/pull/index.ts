export {
  type ManifestRequest,
  PullService,
  type PullServiceOptions,
  rewriteTagsLink,
  type ServedManifest,
} from "./pull-service.ts";
