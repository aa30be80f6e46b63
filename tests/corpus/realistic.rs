//! A generated monorepo shaped like real Azure Pipelines repositories, for the accuracy test
//! (`tests/integration/tasks_corpus.rs`) and the bench (`benches/scan.rs`). Written from our
//! own templates: matrices passed as `object` parameters whose items carry `template:` keys,
//! `stepList`/`stageList` parameters with template defaults, `extends` with stage lists,
//! `path@self` and root-relative includes, backslash paths, `${{ if }}`/`${{ each }}`, CRLF
//! line endings and UTF-8 byte order marks. Every include resolves and no task is deprecated
//! by its own `task.json`, so a correct check reports no TSK003, TSK008, TSK009 or TSK010.

use std::path::Path;

/// Services in the monorepo; each has 11 pipeline or template files and one Kubernetes
/// manifest that is not a pipeline.
pub const SERVICES: usize = 30;
/// Files shared by every service.
const SHARED: usize = 2;
/// Pipeline and template files written.
pub const PIPELINE_FILES: usize = SERVICES * 11 + SHARED;
/// Entry pipelines: `ci.yml`, `release.yml` and `pr.yaml` of each service.
pub const ENTRIES: usize = SERVICES * 3;

/// Writes the corpus under `root`; returns the bytes written.
pub fn write(root: &Path) -> usize {
    let mut bytes = 0;
    let mut n = 0usize;
    let mut put = |rel: &str, text: &str| {
        // Every third file has Windows line endings, every fifth a byte order mark.
        let mut body = if n % 3 == 0 { text.replace('\n', "\r\n") } else { text.to_string() };
        if n % 5 == 0 {
            body.insert(0, '\u{feff}');
        }
        n += 1;
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("create a folder");
        std::fs::write(&path, &body).expect("write a corpus file");
        bytes += body.len();
    };
    put("eng/templates/release.yml", RELEASE_SHARED);
    put("eng/templates/steps/compliance.yml", COMPLIANCE);
    for k in 0..SERVICES {
        let svc = format!("svc{k:02}");
        let with = |t: &str| t.replace("{svc}", &svc);
        put(&format!("services/{svc}/.pipelines/ci.yml"), &with(CI));
        put(&format!("services/{svc}/.pipelines/release.yml"), &with(RELEASE));
        put(&format!("services/{svc}/.ado/pr.yaml"), &with(PR));
        put(&format!("services/{svc}/templates/stages/build.yml"), STAGES_BUILD);
        put(&format!("services/{svc}/templates/jobs/build.yml"), &with(JOBS_BUILD));
        put(&format!("services/{svc}/templates/jobs/test.yml"), JOBS_TEST);
        put(&format!("services/{svc}/templates/steps/restore.yml"), STEPS_RESTORE);
        put(&format!("services/{svc}/templates/steps/build.yml"), STEPS_BUILD);
        put(&format!("services/{svc}/templates/steps/publish.yml"), STEPS_PUBLISH);
        put(&format!("services/{svc}/templates/steps/sign.yml"), STEPS_SIGN);
        put(&format!("services/{svc}/templates/variables/common.yml"), VARIABLES);
        put(&format!("services/{svc}/deploy/k8s.yaml"), &with(K8S));
    }
    bytes
}

const CI: &str = r#"# CI for {svc}
trigger:
  branches:
    include:
    - main

parameters:
- name: apps
  type: object
  default:
  - name: {svc}_app
    template: cpp-app
    os: linux
  - template: cpp-lib
    name: {svc}_lib
    os: windows
- name: preBuild
  type: stepList
  default:
  - template: ../templates/steps/restore.yml
  - ${{ if eq(variables['Build.Reason'], 'PullRequest') }}:
    - template: /eng/templates/steps/compliance.yml@self

variables:
- template: ../templates/variables/common.yml
- name: service
  value: {svc}

stages:
- template: ../templates/stages/build.yml
  parameters:
    apps: ${{ parameters.apps }}
    preBuild: ${{ parameters.preBuild }}
- stage: Package
  dependsOn: Build
  jobs:
  - ${{ each app in parameters.apps }}:
    - job: package_${{ app.name }}
      strategy:
        matrix:
          release:
            template: ${{ app.template }}
      steps:
      - script: echo packaging ${{ app.template }}
      - template: ..\templates\steps\publish.yml
        parameters:
          flavours:
          - name: debug
            template: debug-flavour
          - name: release
            template: release-flavour
"#;

const RELEASE: &str = r#"trigger: none

extends:
  template: /eng/templates/release.yml@self
  parameters:
    service: {svc}
    environments:
    - name: staging
      template: blue-green
    - name: production
      template: canary
    stages:
    - template: /services/{svc}/templates/stages/build.yml@self
      parameters:
        apps:
        - name: {svc}_app
          template: cpp-app
"#;

const PR: &str = r#"pr:
- main

pool:
  vmImage: ubuntu-latest

jobs:
- template: ..\templates\jobs\test.yml
  parameters:
    configurations:
    - name: debug
      template: debug-preset
    - name: asan
      template: asan-preset
- job: lint
  steps:
  - task: PowerShell@2
    inputs:
      targetType: inline
      script: Write-Host lint {svc}
  - task: PowerShell@1
    inputs:
      scriptType: inlineScript
      inlineScript: Write-Host legacy
"#;

const STAGES_BUILD: &str = r#"parameters:
- name: apps
  type: object
  default: []
- name: preBuild
  type: stepList
  default: []

stages:
- stage: Build
  jobs:
  - template: ../jobs/build.yml
    parameters:
      apps: ${{ parameters.apps }}
      preBuild: ${{ parameters.preBuild }}
"#;

const JOBS_BUILD: &str = r#"parameters:
- name: apps
  type: object
  default:
  - name: default
    template: cpp-app
    os: linux
- name: preBuild
  type: stepList
  default:
  - template: ../steps/restore.yml

jobs:
- ${{ each app in parameters.apps }}:
  - job: build_${{ app.name }}
    pool:
      vmImage: ubuntu-latest
    steps:
    - ${{ parameters.preBuild }}
    - template: ../steps/build.yml
      parameters:
        preset: ${{ app.template }}
    - template: /services/{svc}/templates/steps/sign.yml@self
"#;

const JOBS_TEST: &str = r#"parameters:
- name: configurations
  type: object
  default: []

jobs:
- ${{ each c in parameters.configurations }}:
  - job: test_${{ c.name }}
    steps:
    - template: ../steps/restore.yml
    - task: DotNetCoreCLI@2
      inputs:
        command: test
        arguments: --preset ${{ c.template }}
    - task: PublishTestResults@2
      condition: succeededOrFailed()
"#;

const STEPS_RESTORE: &str = r#"steps:
- task: UseDotNet@2
  inputs:
    packageType: sdk
    version: 8.x
- task: NuGetAuthenticate@1
- script: dotnet restore
"#;

const STEPS_BUILD: &str = r#"parameters:
- name: preset
  type: string
  default: cpp-app

steps:
- task: CMake@1
  inputs:
    cmakeArgs: --preset ${{ parameters.preset }}
- task: Bash@3
  inputs:
    targetType: inline
    script: cmake --build --preset ${{ parameters.preset }}
"#;

const STEPS_PUBLISH: &str = r#"parameters:
- name: flavours
  type: object
  default: []

steps:
- ${{ each f in parameters.flavours }}:
  - task: CopyFiles@2
    inputs:
      contents: out/${{ f.template }}/**
      targetFolder: $(Build.ArtifactStagingDirectory)/${{ f.name }}
- task: ArchiveFiles@1
  inputs:
    rootFolder: $(Build.ArtifactStagingDirectory)
- task: PublishBuildArtifacts@1
"#;

const STEPS_SIGN: &str = r#"steps:
- task: PowerShell@2
  displayName: Sign
  inputs:
    filePath: eng/sign.ps1
"#;

const VARIABLES: &str = r#"variables:
  buildConfiguration: Release
  ${{ if eq(variables['Build.SourceBranchName'], 'main') }}:
    publish: true
"#;

const RELEASE_SHARED: &str = r#"parameters:
- name: service
  type: string
- name: environments
  type: object
  default: []
- name: stages
  type: stageList
  default: []

stages:
- ${{ parameters.stages }}
- ${{ each env in parameters.environments }}:
  - stage: deploy_${{ env.name }}
    jobs:
    - deployment: deploy
      environment: ${{ env.name }}
      strategy:
        runOnce:
          deploy:
            steps:
            - template: steps/compliance.yml
            - task: AzureCLI@2
              inputs:
                azureSubscription: contoso-arm
                scriptType: bash
                scriptLocation: inlineScript
                inlineScript: ./deploy.sh ${{ parameters.service }} ${{ env.template }}
"#;

const COMPLIANCE: &str = r#"steps:
- script: echo compliance
- task: Bash@3
  inputs:
    targetType: inline
    script: ./eng/compliance.sh
"#;

const K8S: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {svc}
spec:
  template:
    spec:
      containers:
      - name: {svc}
        image: contoso.azurecr.io/{svc}:latest
"#;
