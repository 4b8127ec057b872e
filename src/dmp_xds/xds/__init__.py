"""The pure IHE XDS.b core: vocabulary, metadata model, ebRIM codec, XDS error codes, the metadata
rules and the registry rules over snapshots, the safe XML parser. No SQL, no disk, no transport;
it imports nothing of this project but itself."""
